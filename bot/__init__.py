"""SafeChild: the chat front door for child protection in Vietnamese communes."""
