"""Profile schema and loading — torch-free, shared by ftctl, ftd and ftui."""

from .loader import LoadedProfile, dump_profile, load_profile, load_profile_data, resolve_paths
from .schema import STAGES, DataConfig, MethodConfig, ModelConfig, OutputConfig, Profile, TrainConfig, field_docs

__all__ = [
    "STAGES", "DataConfig", "LoadedProfile", "MethodConfig", "ModelConfig", "OutputConfig", "Profile",
    "TrainConfig", "dump_profile", "field_docs", "load_profile", "load_profile_data", "resolve_paths",
]
