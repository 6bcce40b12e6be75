"""A trained method as an MLflow model: each train stage logs this file as a pyfunc ("models from
code": nothing pickled) with the model folder as its artifact, so

    video = mlflow.pyfunc.load_model("runs:/<run id>/model").predict(
        {"image": image, "conditions": conditions, "input_condition": input_condition})

gives what `frgan.load(folder).generate(...)` gives (uint8 (T, S, S, 3)); see frgan/api.py for
the inputs. The run's input example is its dataset's first test item.
"""
from __future__ import annotations

import warnings

import mlflow
import numpy as np

INPUTS = ("image", "conditions", "input_condition", "label")

with warnings.catch_warnings():   # MLflow's advice to type `predict`: its input is a dict of arrays
    warnings.simplefilter("ignore", UserWarning)

    class TrainedVideoModel(mlflow.pyfunc.PythonModel):
        def load_context(self, context) -> None:
            from frgan.api import load_model
            self.model = load_model(context.artifacts["model"])

        def predict(self, context, model_input, params=None) -> np.ndarray:
            given = {key: model_input[key] for key in INPUTS if key in model_input}
            label = given.pop("label", None)
            return self.model.generate(**given, label=None if label is None else str(np.asarray(label).item()))


    mlflow.models.set_model(TrainedVideoModel())
