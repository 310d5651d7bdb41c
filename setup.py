"""lavis-vila: ViLA (ECCV 2024) as a plugin to salesforce-lavis 1.0.2."""
from setuptools import find_packages, setup
from setuptools.command.editable_wheel import editable_wheel


class EditableWheelWithDataFiles(editable_wheel):
    """setuptools' editable wheels leave ``data_files`` out (it looks for a ``has_data`` that
    ``Distribution`` lacks); install them as a regular wheel does, so ``pip install -e .`` also
    gets ``lavis_vila_autoload.pth``."""

    def _run_install(self, category):
        super()._run_install(category)
        if category == "data" and self.distribution.has_data_files():
            self.run_command("install_data")


setup(
    name="lavis-vila",
    version="0.1.0",
    description="ViLA: efficient video-language alignment for video QA, as a LAVIS plugin",
    packages=find_packages(include=["lavis_vila", "lavis_vila.*"]),
    py_modules=["lavis_vila_autoload"],
    # The .pth lands in site-packages (a wheel's ``<name>.data/purelib``, reached from the data
    # scheme), for regular and editable installs alike. At start-up it imports
    # lavis_vila_autoload, which registers lavis_vila when a program imports lavis.
    data_files=[("../purelib", ["lavis_vila_autoload.pth"])],
    package_data={
        "lavis_vila": [
            "configs/**/*.yaml",
            "configs/**/*.json",
            "configs/**/*.txt",
            "configs/**/*.model",
        ]
    },
    include_package_data=True,
    python_requires=">=3.9,<3.14",
    install_requires=[
        # torch as the user has it, within the range tested (docs/install.md); never an exact pin,
        # so that a cluster's own CUDA build stays in place.
        "torch>=2.13,<=2.14.1",
        "torchvision>=0.28,<=0.29.1",
        # The pinned stack (Python 3.9-3.11): LAVIS 1.0.2 with the dependencies it pins. Its opencv
        # 4.5.5 and transformers 4.26 need numpy 1.x and matching libraries. On Python 3.12 and newer
        # LAVIS's transformers<4.27 cannot install: setup_env.sh --stack current installs LAVIS
        # without its dependencies and run_scripts/requirements/current.txt beside it.
        'salesforce-lavis==1.0.2; python_version < "3.12"',
        'numpy<2; python_version < "3.12"',
        'pandas<2.3; python_version < "3.12"',
        'scikit-image<0.25; python_version < "3.12"',
        'scipy<1.15; python_version < "3.12"',
        # vila_lora. peft 0.3.0 works with LAVIS's transformers 4.26; the current stack takes a current peft.
        'peft==0.3.0; python_version < "3.12"',
        'peft; python_version >= "3.12"',
        'transformers>=4.31; python_version >= "3.12"',
        "decord==0.6.0",
        "safetensors",  # HF-format weights and saved-model folders
        "filelock",
        "sentencepiece",
        "matplotlib",
        "tqdm",
    ],
    extras_require={
        # The web demo (tools.app). Gradio 5.x installs next to transformers 4.26, numpy<2 and pandas<2.3;
        # Gradio 6 needs huggingface-hub>=1.16, transformers 4.26 <1.0.
        "app": ["gradio==5.50.0"],
        # The app's API and browser tests (Debian's chromium and chromium-driver drive the browser).
        "test": ["pytest", "pytest-timeout", "gradio_client==1.14.0", "selenium==4.51.0"],
    },
    cmdclass={"editable_wheel": EditableWheelWithDataFiles},
    entry_points={
        "console_scripts": [
            "vila-train=lavis_vila.train:main",
            "vila-evaluate=lavis_vila.evaluate:main",
            "vila-app=lavis_vila.tools.app:main",
        ]
    },
)
