"""Training: the Trainer (the classic Solver), checkpoints and exact resume."""
from .checkpoint import load_checkpoint, save_checkpoint
from .evaluate import evaluate, predict, predict_logits
from .trainer import Trainer, TrainingDiverged
from .config import ConfigError
from .run import train_from_config
