from ubuntu:22.04 as Base
MAINTAINER ops@example.com
ENV LANG C.UTF-8
ARG API_KEY
EXPOSE 8080/TCP
CMD python3 app.py
# expect-warning: StageNameCasing
# expect-warning: ConsistentInstructionCasing
# expect-warning: MaintainerDeprecated
# expect-warning: LegacyKeyValueFormat
# expect-warning: SecretsUsedInArgOrEnv
# expect-warning: ExposeProtoCasing
# expect-warning: JSONArgsRecommended
