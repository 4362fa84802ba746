"""The training engine that the RAM agent (``agents``) and the baselines (``baselines``) share.

It sits between the environments (``glimpse_env``, which it imports) and the programs
that train on them (``agents``, ``baselines``, which import it and never each other):

- :mod:`glimpse_engine.fit`: the one fit loop (:func:`~glimpse_engine.fit.start`,
  :func:`~glimpse_engine.fit.fit`, :class:`~glimpse_engine.fit.Program`);
- :mod:`glimpse_engine.cli`: command lines from ``Args`` dataclasses (tyro), ``--resume``
  settings, the checks made before anything is written, one-line errors and Ctrl-C;
- :mod:`glimpse_engine.runs`: run folders, TensorBoard writers, atomic JSON;
- :mod:`glimpse_engine.checkpoints`: checkpoints that run no code and carry a checksum;
- :mod:`glimpse_engine.averaging`: moving and stochastic weight averages;
- :mod:`glimpse_engine.streams`: the random streams a checkpoint keeps;
- :mod:`glimpse_engine.distributed`: torchrun's data-parallel helpers;
- :mod:`glimpse_engine.weights`: the shipped weights (safetensors and a JSON card);
- :mod:`glimpse_engine.pictures`: caption strips for pictures of a model at work;
- :mod:`glimpse_engine.scoring`: what the evaluation programs share.
"""
