from tests.api.conftest import org, other_org, server  # noqa: F401 - the live case-api fixtures
