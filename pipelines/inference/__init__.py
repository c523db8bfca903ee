"""An export in use: the front door that opens it, prepares raw input the way its training
data was prepared, and runs the mode a caller names."""
