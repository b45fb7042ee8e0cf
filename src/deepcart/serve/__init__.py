"""The service: ``deepcart serve``, an HTTP API that serves recommendations and keeps reviews.

- :mod:`deepcart.serve.config`: the settings (flags and ``DEEPCART_*`` environment variables).
- :mod:`deepcart.serve.store`: submitted reviews in a real database (SQLite by default).
- :mod:`deepcart.serve.state`: the loaded dataset, models and lookups as one immutable object,
  swapped whole by the reload endpoints.
- :mod:`deepcart.serve.api`: the FastAPI app factory and its routers.

FastAPI, uvicorn and SQLAlchemy come with the ``serve`` extra (``pip install 'deepcart[serve]'``).
"""
