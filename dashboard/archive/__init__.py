"""What happened: closed events in compact columns, the cockpit's figures over them, and the
units' tracks."""
