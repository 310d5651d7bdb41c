"""QFormer-Distiller (ViLA §3.3): the K-frame student regresses the T-frame teacher.

Both sides are LLM-space tokens (after the projection): the student's (B, Q*K, D) and the
teacher's (B, Q*T, D). A decoder, Linear(Q*K -> Q*T) followed by LayerNorm(Q*T) along the token
axis (the paper's best variant, Table 5), stretches the student to the teacher's length, and
the loss is their mean squared error.
"""
import torch
import torch.nn.functional as F
from torch import nn

from lavis_vila.models.precision import autocast_to


class QFormerDistiller(nn.Module):
    def __init__(self, *, student_tokens: int, teacher_tokens: int):
        super().__init__()
        self.decoder = nn.Sequential(
            nn.Linear(student_tokens, teacher_tokens), nn.LayerNorm(teacher_tokens)
        )

    def forward(self, student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
        """MSE between decode(student (B, Q*K, D)) and teacher (B, Q*T, D), in fp32 under amp."""
        with autocast_to(student.device, torch.float32):
            student = student.to(self.decoder[0].weight.dtype)
            decoded = self.decoder(student.transpose(1, 2)).transpose(1, 2)  # (B, Q*T, D)
            return F.mse_loss(decoded.float(), teacher.float())
