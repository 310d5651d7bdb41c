"""``vila_lora``: ViLA with LoRA on the LLM (the paper's "ViLA+LoRA", Table 1; official ``vila_lora``).

Everything ``vila`` trains, plus low-rank adapters on T5's attention query and value projections
(rank 16, alpha 32, dropout 0.05, as the official code). The rest of T5 stays frozen, its weights
in fp32 as the official LoRA run leaves them (``llm_weights_fp32``), computing in T5's autocast
region (``llm_precision``, bf16 at full size) like every model here. The
adapters start as a zero update (``lora_B`` is zero-initialised), so a stage-2 initialisation
from ``tools.merge_weights`` holds none; checkpoints written in training hold them, under
``t5_model.base_model.model.<T5 module>.lora_{A,B}.default.weight`` (peft's names).
"""

from lavis_vila.models.backbones import device_context
from lavis_vila.models.paths import model_config_paths
from lavis_vila.models.vila import ViLA
from lavis_vila.registry import register_model


@register_model("vila_lora")
class ViLALoRA(ViLA):
    """Usage: ``load_model_and_preprocess("vila_lora", "tiny", is_eval=True)``.

    Args (beyond ``vila``'s):
        lora_r, lora_alpha, lora_dropout: the adapters' rank, scale numerator and input dropout.
        lora_target_modules: names of the T5 linear layers that get adapters.
        llm_weights_fp32: T5's weights in fp32, as the official LoRA run (which skips the bf16
            cast its ``vila`` makes); False: in ``llm_precision``, as ``vila``'s.
    """

    PRETRAINED_MODEL_CONFIG_DICT = model_config_paths("vila_lora")

    def __init__(self, *, lora_r: int = 16, lora_alpha: int = 32, lora_dropout: float = 0.05,
                 lora_target_modules: tuple = ("q", "v"), llm_weights_fp32: bool = True, empty: bool = False,
                 **vila_kwargs):
        super().__init__(empty=empty, llm_weights_fp32=llm_weights_fp32, **vila_kwargs)
        from peft import LoraConfig, TaskType, get_peft_model  # here: registering the models needs no peft

        lora = LoraConfig(
            r=lora_r,
            lora_alpha=lora_alpha,
            lora_dropout=lora_dropout,
            target_modules=list(lora_target_modules),
            bias="none",
            task_type=TaskType.SEQ_2_SEQ_LM,
        )
        with device_context(empty):
            self.t5_model = get_peft_model(self.t5_model, lora)  # only the adapters require grad
