"""The draw-a-digit web page: a FastAPI app serving a drawing page and a prediction API.

``models`` finds and loads trained models under a runs folder, ``app`` builds the FastAPI app,
``server`` runs it with uvicorn, ``cli`` adds ``mnistlab draw``. FastAPI, uvicorn and Pillow are
imported only inside this package (the ``web`` extra), so the rest of mnistlab never needs them.
"""
