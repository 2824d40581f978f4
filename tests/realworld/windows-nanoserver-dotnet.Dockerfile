# escape=`
# platform: windows/amd64
FROM mcr.microsoft.com/dotnet/sdk:8.0-nanoserver-ltsc2022 AS build
WORKDIR C:\source
COPY *.csproj .
RUN dotnet restore
COPY . .
RUN dotnet publish --no-restore -c Release -o C:\app

FROM mcr.microsoft.com/dotnet/runtime:8.0-nanoserver-ltsc2022
WORKDIR C:\app
COPY --from=build C:\app .
USER ContainerUser
ENTRYPOINT ["dotnetapp.exe"]
