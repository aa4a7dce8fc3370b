"""The device's side of uploading: bundle format, outbox, uploader, enrolment."""
