"""Build suanli: the Python package lives in operator/suanli, the placement core is Cython.

Cython and a C compiler are hard requirements. There is deliberately no pure-Python fallback:
the reference implementation exists as a test oracle, never as a silent substitute in production.
"""

from pathlib import Path

from Cython.Build import cythonize
from setuptools import Extension, find_packages, setup

HERE = Path(__file__).parent
SOURCE_ROOT = "operator"


def cython_extensions() -> list[Extension]:
    extensions = []
    for pyx in sorted((HERE / SOURCE_ROOT).rglob("*.pyx")):
        relative = pyx.relative_to(HERE)
        module = ".".join(pyx.relative_to(HERE / SOURCE_ROOT).with_suffix("").parts)
        extensions.append(
            Extension(module, [str(relative)], extra_compile_args=["-O3"], language="c")
        )
    if not extensions:
        raise SystemExit("setup.py: no .pyx sources found under operator/: refusing to build")
    return extensions


setup(
    name="suanli",
    version="0.1.0",
    description="A Kubernetes operator for multi-tenant Ascend NPU and NVIDIA GPU compute centres",
    long_description=(HERE / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.11",
    package_dir={"": SOURCE_ROOT},
    packages=find_packages(SOURCE_ROOT),
    package_data={"suanli": ["py.typed", "**/*.pyi", "**/*.pyx", "**/*.yaml", "**/*.proto"]},
    ext_modules=cythonize(
        cython_extensions(),
        compiler_directives={
            "language_level": "3",
            "boundscheck": False,
            "wraparound": False,
            "cdivision": True,
            "initializedcheck": False,
        },
    ),
    install_requires=[
        "kopf>=1.44,<2",
        "kubernetes>=31",
        "pydantic>=2.7,<3",
        "prometheus-client>=0.20",
        "PyYAML>=6",
        "cryptography>=42",
        "aiohttp>=3.9",  # the admission webhook server (also Kopf's HTTP stack)
        "typer>=0.12",
        "rich>=13",
        # the real node's device plugin (suanli.deviceplugin): stubs from grpcio-tools 1.85
        "grpcio>=1.85",
        "protobuf>=7.35.1,<8",  # the generated stubs need this major
    ],
    extras_require={
        # `kubectl suanli report` draws its plots with matplotlib; the operator image needs none
        "report": ["matplotlib>=3.8"],
        "dev": [
            "matplotlib>=3.8",
            "mkdocs-material>=9.5",
            "Cython>=3.0.10,<4",
            "grpcio-tools==1.85.1",
            "pytest>=8",
            "pytest-timeout>=2.3",
            "pytest-xdist==3.8.0",  # the unit suite under coverage, on both cores
            "coverage>=7.6",
            "mutmut==3.8.1",
            "hypothesis>=6.100",
            "ruff==0.17.5",
            "mypy==2.4.1",
            "import-linter==2.16",
            "types-PyYAML",
            "grafana-foundation-sdk==1769699379!11.6.0",
        ],
    },
    entry_points={
        "console_scripts": [
            "suanli-sim=suanli.sim.cli:main",
            "suanli-dev=suanli.localcluster.cli:main",
            "kubectl-suanli=suanli.cli.main:main",
            "suanli=suanli.cli.main:main",
        ],
    },
    zip_safe=False,
)
