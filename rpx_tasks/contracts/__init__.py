"""The contracts every layer shares: task and model declarations, prediction and ground-truth
types, and the small geometry helpers that models and tasks both need.

Nothing here imports anything of rpx_tasks but ``errors``, ``constants`` and ``sample``.
"""
