"""The admin web UI: its session scheme (session.py) and static files (static/), served by routes/ui.py."""
