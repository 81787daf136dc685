"""The LSTM: build, train, walk forward, save and load a self-contained ``.keras`` artifact.

Split by concern:

- :mod:`forecasting.model.network`: the Keras model (stacked LSTMs, the distributional head,
  the Student's t loss) and its optimizer;
- :mod:`forecasting.model.training`: retrain, fine-tune and walk forward (the tf.data pipeline,
  early stopping, the seed);
- :mod:`forecasting.model.trace`: the traced network shared by every model of an architecture
  in the process, and the prediction that runs on it;
- :mod:`forecasting.model.artifact`: the ``.keras`` file, its sha256, and the bytes a task hands
  to the next.

Everything public is importable from here (``from forecasting.model import train``). Importing
the package registers the head and the loss with Keras, which loading a model needs.
"""

from forecasting.tensorflow_env import set_tensorflow_defaults

# TensorFlow reads them when it is first imported: set them before keras pulls it in.
set_tensorflow_defaults()

from forecasting.model.artifact import (  # noqa: E402
    RETRAIN_HINT,
    SavedModel,
    check_sha256,
    file_sha256,
    load_model,
    save_model,
)
from forecasting.model.network import (  # noqa: E402
    SCALE_FLOOR,
    SCALE_OFFSET,
    STEPS_PER_CALL,
    STUDENT_T_DF,
    T_CONSTANT,
    DistributionHead,
    build_model,
    student_t_nll,
)
from forecasting.model.trace import predict_distribution  # noqa: E402
from forecasting.model.training import (  # noqa: E402
    TrainingResult,
    fine_tune,
    set_seed,
    train,
    walk_forward,
)

__all__ = [
    "RETRAIN_HINT",
    "SCALE_FLOOR",
    "SCALE_OFFSET",
    "STEPS_PER_CALL",
    "STUDENT_T_DF",
    "T_CONSTANT",
    "DistributionHead",
    "SavedModel",
    "TrainingResult",
    "build_model",
    "check_sha256",
    "file_sha256",
    "fine_tune",
    "load_model",
    "predict_distribution",
    "save_model",
    "set_seed",
    "student_t_nll",
    "train",
    "walk_forward",
]
