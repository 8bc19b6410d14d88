"""Training recipes that ship with starquad: ``starquad train -c fashion_mnist`` (a name) reads
``fashion_mnist.yaml`` from here, through :mod:`importlib.resources`, so an installed starquad finds them too."""
