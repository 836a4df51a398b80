from regime_detection.app import create_app

app = create_app()
