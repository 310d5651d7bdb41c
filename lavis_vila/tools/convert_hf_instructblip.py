"""Convert a Hugging Face InstructBLIP (Flan-T5) folder into the weight sources our models read.

    python -m lavis_vila.tools.convert_hf_instructblip path/to/instructblip-flan-t5-xl --out weights/instructblip_xl

The input is the Hub's layout (``Salesforce/instructblip-flan-t5-xl`` or ``-xxl``, downloaded with
``huggingface-cli download``): ``config.json``, safetensors under HF names, the T5 tokenizer and
``qformer_tokenizer/``. ``--out`` gets the ViT weights, the InstructBLIP ``pretrained`` file, a T5
folder and the Q-Former tokenizer, plus ``model_overrides.yaml`` with the model config keys that
read them (``lavis_vila.hf_instructblip`` has the mapping). Nothing is downloaded.
"""
import argparse

from lavis_vila.checkpoints import CheckpointError
from lavis_vila.hf_instructblip import OVERRIDES_FILE, convert


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("hf_dir", help="a local Hugging Face InstructBLIP folder (config.json, *.safetensors)")
    parser.add_argument("--out", required=True, help="the folder to write")
    args = parser.parse_args(argv)
    try:
        keys = convert(args.hf_dir, args.out)
    except (CheckpointError, FileNotFoundError) as error:
        parser.exit(1, f"convert_hf_instructblip: {error}\n")
    print(f"\nwrote {args.out}; set these model config keys (also in {args.out}/{OVERRIDES_FILE}):")
    for key, value in keys.items():
        print(f"  {key}: {value}")


if __name__ == "__main__":
    main()
