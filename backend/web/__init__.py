"""The HTTP edge: the Flask app, Label Studio's ML-backend routes, admin routes, auth, the server."""
