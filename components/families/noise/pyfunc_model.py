"""Model code of a registered generator (MLflow "models from code"): MLflow runs this file to
build the model object when a version is loaded, instead of unpickling one."""

import mlflow

from components.families.noise.pyfunc import GeneratorModel

mlflow.models.set_model(GeneratorModel())
