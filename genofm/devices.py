"""Where a job's torch work runs: the config's `gpus` decides, not whatever happens to be visible.

gpus 0 runs on the CPU even on a GPU node (the same config gives the same files); gpus > 0
runs on CUDA and fails clearly when torch cannot see a GPU, rather than crawling on the CPU.
"""

import torch

from .errors import GenofmInputError


def torch_device(gpus: int, setting: str, local_rank: int = 0) -> torch.device:
    """The device of process `local_rank` for a job configured with `gpus` (config key `setting`)."""
    if gpus == 0:
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise GenofmInputError(
            f"{setting} is {gpus}, but torch {torch.__version__} sees no CUDA GPU (a CPU build of torch, "
            f"or no GPU given to the job). Set it to 0 to run on the CPU")
    visible = torch.cuda.device_count()
    if local_rank >= visible:
        raise GenofmInputError(f"process {local_rank} needs a GPU of its own, but {visible} are visible "
                               f"({setting} is {gpus}): run one process per GPU")
    return torch.device(f"cuda:{local_rank}")


def bf16_autocast(device: torch.device):
    """bf16 autocast on CUDA (halves memory traffic; fp32 master weights), a no-op on the CPU."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")
