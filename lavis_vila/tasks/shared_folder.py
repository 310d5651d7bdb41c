"""Whether every process of a run sees one folder: the file system check of a multi-node run.

The evaluation's records travel between ranks through the process group (gloo or nccl), but the
run's output folder is one folder for all of them: the main process writes the checkpoints and
the results there, and every rank reloads ``checkpoint_best.pth`` from it. On several nodes that
needs a file system every node mounts at the same path. Each rank writes a marker file into the
folder and looks for every other rank's; a rank that misses one fails the run on every rank, with
the hosts named, instead of evaluating other weights or leaving some nodes waiting.
"""
import os
import secrets
import socket

import torch.distributed as dist
from lavis.common.dist_utils import get_rank, get_world_size, is_dist_avail_and_initialized

from lavis_vila.atomic_files import write_text

HOW_TO_SHARE = ("a multi-node run needs run.output_dir on a file system that every node mounts at the same path "
                "(docs/runners.md, 'Several nodes')")


class FolderNotSharedError(RuntimeError):
    pass


def marker_path(folder: str, token: str, rank: int) -> str:
    return os.path.join(folder, f".shared_check_{token}_rank{rank}")


def unseen_ranks(folder: str, token: str, world_size: int) -> list:
    return [rank for rank in range(world_size) if not os.path.isfile(marker_path(folder, token, rank))]


def check_shared_folder(folder: str, what: str) -> None:
    """Raise ``FolderNotSharedError`` on every rank unless every rank sees every rank's marker in
    ``folder`` (``what`` names it in the message). A no-op without a process group; collective."""
    if not is_dist_avail_and_initialized():
        return
    rank, world_size = get_rank(), get_world_size()
    token = [secrets.token_hex(4)]  # this check's own markers, never a stale file of an earlier run
    dist.broadcast_object_list(token, src=0)
    mine = marker_path(folder, token[0], rank)
    try:
        write_text(mine, socket.gethostname())
    except OSError:  # the folder is not there on this node
        pass
    dist.barrier()
    views = [None] * world_size  # (host, folder exists, ranks whose marker is missing) of each rank
    view = (socket.gethostname(), os.path.isdir(folder), unseen_ranks(folder, token[0], world_size))
    dist.all_gather_object(views, view)  # returns once every rank has looked: the markers may go
    if os.path.exists(mine):
        os.remove(mine)
    blind = [f"rank {r} on host {host} " + (f"cannot see the files of rank(s) {unseen}" if exists
                                            else "has no such folder")
             for r, (host, exists, unseen) in enumerate(views) if unseen]
    if blind:
        raise FolderNotSharedError(f"{what} {folder} (as rank {rank} on host {socket.gethostname()} resolves it) "
                                   f"is not one folder for every rank: {'; '.join(blind)}. {HOW_TO_SHARE}")
