"""Training apart from inference: the stages, losses and discriminators that make a codec's weights.

``training`` may import ``codecs`` and ``metrics``; neither of them imports ``training``.
"""
