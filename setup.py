"""lavis-vila: ViLA (ECCV 2024) as a plugin to salesforce-lavis 1.0.2."""
from setuptools import find_packages, setup

setup(
    name="lavis-vila",
    version="0.1.0",
    description="ViLA: efficient video-language alignment for video QA, as a LAVIS plugin",
    packages=find_packages(include=["lavis_vila", "lavis_vila.*"]),
    package_data={
        "lavis_vila": [
            "configs/**/*.yaml",
            "configs/**/*.json",
            "configs/**/*.txt",
            "configs/**/*.model",
        ]
    },
    include_package_data=True,
    python_requires=">=3.9",
    install_requires=[
        "salesforce-lavis==1.0.2",
        # LAVIS 1.0.2's opencv 4.5.5 and transformers 4.26 need numpy 1.x and matching libraries.
        "numpy<2",
        "pandas<2.3",
        "scikit-image<0.25",
        "scipy<1.15",
        "torch==2.14.1",
        "torchvision==0.29.1",
        "decord==0.6.0",
        "sentencepiece",
        "matplotlib",
        "tqdm",
    ],
    extras_require={"test": ["pytest", "pytest-timeout"]},
    entry_points={
        "console_scripts": [
            "vila-train=lavis_vila.train:main",
            "vila-evaluate=lavis_vila.evaluate:main",
        ]
    },
)
