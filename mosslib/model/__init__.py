"""The model: MOEDN (config, rain memory, network, fast inference path) and its peer baselines.

Knows nothing of training, files of runs, or screens.
"""
