import pytest

from lamina.domain import errors, runtimes
from lamina.domain.settings import FunctionSettings, validate


def test_valid_settings_pass():
    validate(
        FunctionSettings(
            runtime="python3.12",
            handler="app.handler",
            timeout=900,
            memory_size=10240,
            environment={"AB": "1"},
            role="arn:aws:iam::123456789012:role/x",
        )
    )


@pytest.mark.parametrize(
    "settings, error, fragment",
    [
        (FunctionSettings(timeout=0), errors.ValidationError, "greater than or equal to 1"),
        (FunctionSettings(timeout=901), errors.ValidationError, "less than or equal to 900"),
        (FunctionSettings(memory_size=127), errors.ValidationError, "at 'memorySize'"),
        (FunctionSettings(ephemeral_storage=511), errors.ValidationError, "ephemeralStorage"),
        (FunctionSettings(environment={"A": "1"}), errors.ValidationError, "Map keys"),
        (FunctionSettings(environment={"TZ": "x"}), errors.InvalidParameterValue, "reserved keys"),
        (FunctionSettings(environment={"BIG": "x" * 4100}), errors.InvalidParameterValue, "4KB"),
        (FunctionSettings(handler="a b"), errors.ValidationError, "regular expression"),
        (FunctionSettings(handler="a" * 129), errors.ValidationError, "length"),
        (
            FunctionSettings(architectures=("x86_64", "arm64")),
            errors.ValidationError,
            "architectures",
        ),
        (
            FunctionSettings(package_type="Image"),
            errors.InvalidParameterValue,
            "Zip functions only",
        ),
        (
            FunctionSettings(dead_letter_target="arn:nope"),
            errors.InvalidParameterValue,
            "target arn",
        ),
        (
            FunctionSettings(layers=("arn:aws:lambda:us-east-1:1:layer:x:1",)),
            errors.ValidationError,
            "at 'layers'",
        ),
        (
            FunctionSettings(
                layers=tuple(
                    f"arn:aws:lambda:us-east-1:123456789012:layer:l{i}:1" for i in range(6)
                )
            ),
            errors.InvalidParameterValue,
            "more than 5 layers",
        ),
        (
            FunctionSettings(
                layers=(
                    "arn:aws:lambda:us-east-1:123456789012:layer:x:1",
                    "arn:aws:lambda:us-east-1:123456789012:layer:x:2",
                )
            ),
            errors.InvalidParameterValue,
            "same layer",
        ),
    ],
)
def test_broken_rules(settings, error, fragment):
    with pytest.raises(error, match=fragment):
        validate(settings)


def test_environment_size_is_measured_on_compact_json():
    # {"AB":"xxx…"} is 9 bytes of structure: 4087 of value fit exactly in 4096.
    validate(FunctionSettings(environment={"AB": "x" * 4087}))
    with pytest.raises(errors.InvalidParameterValue):
        validate(FunctionSettings(environment={"AB": "x" * 4088}))


@pytest.mark.parametrize(
    "runtime, family, version",
    [
        ("python3.12", "python", (3, 12)),
        ("nodejs20.x", "nodejs", (20, 0)),
        ("provided.al2023", "provided", None),
        ("java21", "other", None),
    ],
)
def test_runtime_families(runtime, family, version):
    assert runtimes.family(runtime) == family
    assert runtimes.version_of(runtime) == version


def test_runtime_checks():
    runtimes.check("nodejs22.x", "Zip")
    with pytest.raises(
        errors.InvalidParameterValue,
        match=r"^Value cobol at 'runtime' failed to satisfy constraint: Member "
        r"must satisfy enum value set: \[nodejs20\.x, .*\] or be a valid ARN$",
    ):
        runtimes.check("cobol", "Zip")
    with pytest.raises(errors.InvalidParameterValue, match="runtime parameter of provided is"):
        runtimes.check("provided", "Zip")
    with pytest.raises(errors.InvalidParameterValue, match="no longer supported"):
        runtimes.check("python3.6", "Zip")
    with pytest.raises(errors.InvalidParameterValue, match="mandatory"):
        runtimes.check(None, "Zip")
    assert runtimes.execution_env("python3.12") == "AWS_Lambda_python3.12"
    assert runtimes.execution_env("provided.al2") is None
