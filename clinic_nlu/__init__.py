"""Custom NLU parts of the clinic assistant: the spaCy pipeline built from code and urgency detection."""
