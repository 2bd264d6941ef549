"""Model code of a registered music generator (MLflow "models from code")."""

import mlflow

from components.families.music.pyfunc import MusicModel

mlflow.models.set_model(MusicModel())
