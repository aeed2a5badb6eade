"""The opt-in OAuth sign-in whose credential is the API key."""
