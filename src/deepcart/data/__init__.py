"""The data layer: synth, download, ingest (raw -> Parquet), build (tagged datasets)."""
