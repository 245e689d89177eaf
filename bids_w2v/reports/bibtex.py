"""BibTeX entries of the references the methods texts cite (see reports.boilerplate)."""

from bids_w2v.reports.model_refs import MODEL_BIBTEX

BIBTEX = """\
@inproceedings{millet2022,
  title = {Toward a realistic model of speech processing in the brain with self-supervised
           learning},
  author = {Millet, Juliette and Caucheteux, Charlotte and Orhan, Pierre and Boubenec, Yves and
            Gramfort, Alexandre and Dunbar, Ewan and Pallier, Christophe and King, Jean-R{\\'e}mi},
  booktitle = {Advances in Neural Information Processing Systems},
  volume = {35},
  year = {2022}
}
@inproceedings{baevski2020,
  title = {wav2vec 2.0: A framework for self-supervised learning of speech representations},
  author = {Baevski, Alexei and Zhou, Yuhao and Mohamed, Abdelrahman and Auli, Michael},
  booktitle = {Advances in Neural Information Processing Systems},
  volume = {33},
  year = {2020}
}
@article{fmriprep,
  title = {{fMRIPrep}: a robust preprocessing pipeline for functional {MRI}},
  author = {Esteban, Oscar and others},
  journal = {Nature Methods},
  volume = {16},
  pages = {111--116},
  year = {2019},
  doi = {10.1038/s41592-018-0235-4}
}
@article{nilearn,
  title = {Machine learning for neuroimaging with scikit-learn},
  author = {Abraham, Alexandre and others},
  journal = {Frontiers in Neuroinformatics},
  volume = {8},
  pages = {14},
  year = {2014},
  doi = {10.3389/fninf.2014.00014}
}
@article{nipype,
  title = {Nipype: a flexible, lightweight and extensible neuroimaging data processing framework
           in Python},
  author = {Gorgolewski, Krzysztof and others},
  journal = {Frontiers in Neuroinformatics},
  volume = {5},
  pages = {13},
  year = {2011},
  doi = {10.3389/fninf.2011.00013}
}
@article{pybids,
  title = {{PyBIDS}: Python tools for {BIDS} datasets},
  author = {Yarkoni, Tal and others},
  journal = {Journal of Open Source Software},
  volume = {4},
  number = {40},
  pages = {1294},
  year = {2019},
  doi = {10.21105/joss.01294}
}
@article{benjamini1995,
  title = {Controlling the false discovery rate: a practical and powerful approach to multiple
           testing},
  author = {Benjamini, Yoav and Hochberg, Yosef},
  journal = {Journal of the Royal Statistical Society B},
  volume = {57},
  number = {1},
  pages = {289--300},
  year = {1995}
}
@article{nichols2002,
  title = {Nonparametric permutation tests for functional neuroimaging: a primer with examples},
  author = {Nichols, Thomas E. and Holmes, Andrew P.},
  journal = {Human Brain Mapping},
  volume = {15},
  number = {1},
  pages = {1--25},
  year = {2002},
  doi = {10.1002/hbm.1058}
}
@article{nunezelizalde2019,
  title = {Voxelwise encoding models with non-spherical multivariate normal priors},
  author = {Nunez-Elizalde, Anwar O. and Huth, Alexander G. and Gallant, Jack L.},
  journal = {NeuroImage},
  volume = {197},
  pages = {482--492},
  year = {2019},
  doi = {10.1016/j.neuroimage.2019.04.012}
}
@article{dupre2022,
  title = {Feature-space selection with banded ridge regression},
  author = {Dupr{\'e} la Tour, Tom and Eickenberg, Michael and Nunez-Elizalde, Anwar O. and
            Gallant, Jack L.},
  journal = {NeuroImage},
  volume = {264},
  pages = {119728},
  year = {2022},
  doi = {10.1016/j.neuroimage.2022.119728}
}
""" + MODEL_BIBTEX
