"""FaceInsight: a Hugging Face-native multimodal LLM for face perception.

Importing this package registers the FaceInsight classes twice, the two ways transformers knows:

* with the Auto classes (`AutoModel.register`, ...), so a saved folder loads here even without `trust_remote_code`;
* for remote code (`register_for_auto_class`), so that every save, `save_pretrained`, `Trainer.save_model`,
  `trl sft`'s output and `push_to_hub` alike, copies the code files and writes `auto_map`: the folder then loads
  with `trust_remote_code=True` where faceinsight is not installed.
"""

from transformers import (
    AutoConfig,
    AutoImageProcessor,
    AutoModel,
    AutoModelForImageTextToText,
    AutoProcessor,
)

from .modeling.configuration_faceinsight import FaceInsightConfig
from .modeling.modeling_faceinsight import (
    FaceInsightForConditionalGeneration,
    FaceInsightModel,
    FaceInsightPreTrainedModel,
)
from .processing.image_processing_faceinsight import FaceInsightImageProcessor
from .processing.processing_faceinsight import FaceInsightProcessor

__version__ = "0.1.0"

AutoConfig.register("faceinsight", FaceInsightConfig, exist_ok=True)
AutoModel.register(FaceInsightConfig, FaceInsightForConditionalGeneration, exist_ok=True)
AutoModelForImageTextToText.register(FaceInsightConfig, FaceInsightForConditionalGeneration, exist_ok=True)
AutoImageProcessor.register(
    FaceInsightConfig, image_processor_classes={"pil": FaceInsightImageProcessor}, exist_ok=True
)
AutoProcessor.register(FaceInsightConfig, FaceInsightProcessor, exist_ok=True)

FaceInsightConfig.register_for_auto_class()
FaceInsightForConditionalGeneration.register_for_auto_class("AutoModelForImageTextToText")
FaceInsightImageProcessor.register_for_auto_class()
FaceInsightProcessor.register_for_auto_class()

__all__ = [
    "FaceInsightConfig",
    "FaceInsightForConditionalGeneration",
    "FaceInsightImageProcessor",
    "FaceInsightModel",
    "FaceInsightPreTrainedModel",
    "FaceInsightProcessor",
]
