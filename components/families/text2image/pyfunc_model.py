"""Model code of a registered text-to-image generator (MLflow "models from code")."""

import mlflow

from components.families.text2image.pyfunc import Text2ImageModel

mlflow.models.set_model(Text2ImageModel())
