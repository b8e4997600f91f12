"""Uploads: tus 1.0.0 resumable uploads and the simple multipart upload."""
