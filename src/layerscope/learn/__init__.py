"""The Learn side: the glossary, guided tours, the knowledge base and its cited chatbot.

Content is data (``content/``); this package loads it, indexes the knowledge base and answers
questions. It sits between the engine and the server: it may use the engine, never the server.
"""
