from risk_management.app import create_app

app = create_app()
