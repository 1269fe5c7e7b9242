"""What the run-directory and sweep tests share: another process holding a lock file."""
import subprocess
import sys
from contextlib import contextmanager


@contextmanager
def held_by_another_process(lock_path):
    """While inside, another process holds an exclusive ``fcntl.lockf`` lock on
    ``lock_path`` (created), as a running handgrad process holds its ``.lock``."""
    holder = subprocess.Popen([sys.executable, "-c", "import fcntl, os, time\n"
                               f"fd = os.open({str(lock_path)!r}, os.O_RDWR | os.O_CREAT)\n"
                               "fcntl.lockf(fd, fcntl.LOCK_EX); print('locked', flush=True); time.sleep(60)"],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        yield
    finally:
        holder.kill()
        holder.wait()
