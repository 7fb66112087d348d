"""Click commands: parse options, call one core function, render, exit."""
