"""Hand-written speed specialisations, each chosen automatically only where it applies and each
checked against the generic path it replaces (tests) and measured against it (benchmarks):

- :mod:`~gradmanip.fast.mlp_backprop`: per-objective policy and critic gradients of tanh MLPs by
  hand-written backpropagation (instead of the autograd engine);
- :mod:`~gradmanip.fast.fused_adam`: actor and critic Adam steps in one fused call per
  minibatch (instead of one ``torch.optim.Adam.step`` per optimizer);
- :mod:`~gradmanip.fast.lean_collector`: a single-environment collector stepping the Gymnasium
  task directly (instead of TorchRL's ``Collector`` over a ``GymEnv``).
"""
