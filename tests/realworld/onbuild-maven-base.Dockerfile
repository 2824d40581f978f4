FROM maven:3.9-eclipse-temurin-17
WORKDIR /usr/src/app
ONBUILD ADD . /usr/src/app
ONBUILD RUN mvn -B -DskipTests install
ONBUILD HEALTHCHECK --interval=1m CMD curl -f http://localhost:8080/ || exit 1
ONBUILD LABEL built-from=maven-onbuild
