"""SqueezeLens core: models, weights, images, preprocessing, labels, engine, CLI. No Qt here.

Importing this package is cheap; torch and timm are imported by the modules that need them.
"""
