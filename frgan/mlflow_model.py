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
            given = {key: np.asarray(model_input[key]) for key in INPUTS if key in model_input}
            if given["image"].dtype != np.uint8 and np.isin(given["image"], np.arange(256)).all():
                given["image"] = given["image"].astype(np.uint8)   # JSON (a served model) gives int64
            label = given.pop("label", None)   # a 1-element array: a signature needs a dimension
            return self.model.generate(**given, label=None if label is None else str(label.ravel()[0]))


    mlflow.models.set_model(TrainedVideoModel())
