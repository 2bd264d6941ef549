"""Model code of a registered translator (MLflow "models from code"): MLflow runs this file to
build the model object when a version is loaded, instead of unpickling one."""

import mlflow

from components.families.translation.pyfunc import TranslatorModel

mlflow.models.set_model(TranslatorModel())
