"""The paper each speech-model family comes from, cited by the methods text.

The family is read from the ``--model`` value (a hub id or folder name): the first pattern
below that the lower-cased name contains wins, and a name that matches none (a local folder
named freely) is cited as wav2vec 2.0, the default family.
"""

from __future__ import annotations

#: (substring of the model name, citation key), first match wins
FAMILY_PATTERNS = (
    ("whisper", "radford2023"),
    ("w2v-bert", "chung2021"),
    ("wav2vec2-bert", "chung2021"),
    ("hubert", "hsu2021"),
    ("wavlm", "chen2022"),
    ("data2vec", "baevski2022"),
)
DEFAULT_KEY = "baevski2020"

MODEL_REFERENCES = {
    "radford2023": "Radford, A., Kim, J. W., Xu, T., Brockman, G., McLeavey, C., & Sutskever, I. "
    "(2023). Robust speech recognition via large-scale weak supervision. Proceedings of the 40th "
    "International Conference on Machine Learning, PMLR 202, 28492-28518.",
    "chung2021": "Chung, Y.-A., Zhang, Y., Han, W., Chiu, C.-C., Qin, J., Pang, R., & Wu, Y. "
    "(2021). W2v-BERT: Combining contrastive learning and masked language modeling for "
    "self-supervised speech pre-training. IEEE ASRU 2021, 244-250.",
    "hsu2021": "Hsu, W.-N., Bolte, B., Tsai, Y.-H. H., Lakhotia, K., Salakhutdinov, R., & "
    "Mohamed, A. (2021). HuBERT: Self-supervised speech representation learning by masked "
    "prediction of hidden units. IEEE/ACM Transactions on Audio, Speech, and Language "
    "Processing 29, 3451-3460.",
    "chen2022": "Chen, S., et al. (2022). WavLM: Large-scale self-supervised pre-training for "
    "full stack speech processing. IEEE Journal of Selected Topics in Signal Processing 16(6), "
    "1505-1518.",
    "baevski2022": "Baevski, A., Hsu, W.-N., Xu, Q., Babu, A., Gu, J., & Auli, M. (2022). "
    "data2vec: A general framework for self-supervised learning in speech, vision and language. "
    "Proceedings of the 39th International Conference on Machine Learning, PMLR 162, 1298-1312.",
}

MODEL_BIBTEX = """\
@inproceedings{radford2023,
  title = {Robust speech recognition via large-scale weak supervision},
  author = {Radford, Alec and Kim, Jong Wook and Xu, Tao and Brockman, Greg and McLeavey,
            Christine and Sutskever, Ilya},
  booktitle = {Proceedings of the 40th International Conference on Machine Learning},
  pages = {28492--28518},
  year = {2023}
}
@inproceedings{chung2021,
  title = {W2v-BERT: Combining contrastive learning and masked language modeling for
           self-supervised speech pre-training},
  author = {Chung, Yu-An and Zhang, Yu and Han, Wei and Chiu, Chung-Cheng and Qin, James and
            Pang, Ruoming and Wu, Yonghui},
  booktitle = {IEEE Automatic Speech Recognition and Understanding Workshop (ASRU)},
  pages = {244--250},
  year = {2021}
}
@article{hsu2021,
  title = {HuBERT: Self-supervised speech representation learning by masked prediction of hidden
           units},
  author = {Hsu, Wei-Ning and Bolte, Benjamin and Tsai, Yao-Hung Hubert and Lakhotia, Kushal and
            Salakhutdinov, Ruslan and Mohamed, Abdelrahman},
  journal = {IEEE/ACM Transactions on Audio, Speech, and Language Processing},
  volume = {29},
  pages = {3451--3460},
  year = {2021}
}
@article{chen2022,
  title = {WavLM: Large-scale self-supervised pre-training for full stack speech processing},
  author = {Chen, Sanyuan and others},
  journal = {IEEE Journal of Selected Topics in Signal Processing},
  volume = {16},
  number = {6},
  pages = {1505--1518},
  year = {2022}
}
@inproceedings{baevski2022,
  title = {data2vec: A general framework for self-supervised learning in speech, vision and
           language},
  author = {Baevski, Alexei and Hsu, Wei-Ning and Xu, Qiantong and Babu, Arun and Gu, Jiatao and
            Auli, Michael},
  booktitle = {Proceedings of the 39th International Conference on Machine Learning},
  pages = {1298--1312},
  year = {2022}
}
"""


def model_reference(name: str) -> str:
    """The citation key of the paper of the model named ``name`` (see the module docstring)."""
    lowered = name.lower()
    return next((key for pattern, key in FAMILY_PATTERNS if pattern in lowered), DEFAULT_KEY)
