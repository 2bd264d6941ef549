"""Model code of a registered video generator (MLflow "models from code")."""

import mlflow

from components.families.video.pyfunc import VideoModel

mlflow.models.set_model(VideoModel())
