"""Pure computation: price sources and validation, features, the LSTM, metrics, drift."""
