"""Sequences and reversible masking shared by every instance: ``Vault``, ``StreamUnmasker``, ``Sequences``.

async with await Vault.connect() as vault:
    masked = await vault.mask("cluster arn:aws:eks:us-east-1:123456789012:cluster/prod")
    masked.text                               # 'cluster AWS_EKS_CLUSTER_001'
    await vault.unmask(masked.text)           # the original again
"""

from __future__ import annotations

from accord.core.crypto import Cipher, CryptoError, DecryptionError, MasterKeyError
from accord.vault.detectors import LITERAL_TYPE, Detection, Detector, DetectorSet, custom_detectors
from accord.vault.mappings import Resolution
from accord.vault.patterns import BUILTIN_DETECTORS, luhn_valid
from accord.vault.sequences import Sequences
from accord.vault.settings import VaultSettings
from accord.vault.shared import SharedVault
from accord.vault.stream import StreamUnmasker
from accord.vault.tokens import TokenGrammar
from accord.vault.types import InvalidInputError, MaskResult, SequenceError, VaultError, VaultStats
from accord.vault.vault import Vault

__all__ = [
    "BUILTIN_DETECTORS",
    "LITERAL_TYPE",
    "Cipher",
    "CryptoError",
    "DecryptionError",
    "Detection",
    "Detector",
    "DetectorSet",
    "InvalidInputError",
    "MaskResult",
    "MasterKeyError",
    "Resolution",
    "SequenceError",
    "Sequences",
    "SharedVault",
    "StreamUnmasker",
    "TokenGrammar",
    "Vault",
    "VaultError",
    "VaultSettings",
    "VaultStats",
    "custom_detectors",
    "luhn_valid",
]
