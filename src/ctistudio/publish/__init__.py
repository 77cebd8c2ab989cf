"""Detection-as-code: approved Sigma rules into a git repository (SigmaHQ layout), pushed, optionally as a
GitHub pull request or GitLab merge request. See :func:`ctistudio.publish.service.publish_approved`."""
