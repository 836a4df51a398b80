from market_data_gateway.app import create_app

app = create_app()
