"""ctistudio as an MCP server: see :mod:`ctistudio.mcp_server.server`."""
