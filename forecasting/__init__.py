"""Pure computation: price sources and validation, features, the LSTM, metrics, drift."""

# Load curl_cffi (yfinance's HTTP client) before anything imports TensorFlow. TensorFlow loads
# its framework library with RTLD_GLOBAL and that library exports a libcurl of its own; a
# curl_cffi loaded afterwards binds to those symbols and every Yahoo request then fails with
# "ImpersonateError: Impersonating chrome... is not supported" (seen with TF 2.21, curl_cffi
# 0.17; reported as yfinance issue #2528). tests/test_import_order.py guards this.
import curl_cffi  # noqa: F401
